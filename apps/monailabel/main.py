"""MONAI Label app serving this repository's bundles: ``monailabel start_server --app apps/monailabel ...``.

The app is :class:`edge_networks.serving.label_app.EdgeSegApp` (tested there); MONAI Label looks for a class in this
file that subclasses ``MONAILabelApp`` directly.
"""

from edge_networks.serving.label_app import EdgeSegApp

__all__ = ["EdgeSegApp"]
