"""Study and label ids of the MONAI Label app: names inside the datastore, never paths.

MONAI Label 0.8.5's ``infer`` takes any path that exists on the server as a study, and its local datastore joins
ids and label tags onto its folders (``os.path.join(studies, id + ext)``), so ``../`` in an id reads, and in an
upload writes, outside the studies folder. The app checks every id before a file is opened, as OWASP's path
traversal guidance asks:

- an id is one file name of the datastore, without its extension: after URL decoding (once, and again, for
  ``%252f``), it holds no ``/``, ``\\`` or NUL, is not ``.`` or ``..``, and is not empty;
- a well-formed id that the datastore does not hold, and an id that breaks the rules, get the same answer: HTTP 404
  ``study 'ID' not found``, naming the id as the client sent it and no server path;
- label tags follow the same rules.

:class:`SafeLocalDatastore` applies them to every datastore call that takes an id (downloads, uploads, labels,
infos); :meth:`~edge_networks.serving.label_app.EdgeSegApp.infer` to the ``image`` of ``/infer``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from fastapi import HTTPException
from monailabel.datastore.local import LocalDatastore

__all__ = ["StudyNotFound", "decoded_forms", "is_valid_id", "check_id", "scrub_paths", "SafeLocalDatastore"]


class StudyNotFound(HTTPException):
    """HTTP 404 ``<kind> '<id>' not found``: for a missing id and a refused one alike."""

    def __init__(self, value: Any, kind: str = "study") -> None:
        super().__init__(status_code=404, detail=f"{kind} {str(value)!r} not found")


def decoded_forms(value: str, times: int = 2) -> list[str]:
    """``value`` and its URL-decodings, up to ``times`` more, stopping when decoding changes nothing.

    >>> decoded_forms("..%252f")
    ['..%252f', '..%2f', '../']
    """
    forms = [value]
    for _ in range(times):
        decoded = unquote(forms[-1])
        if decoded == forms[-1]:
            break
        forms.append(decoded)
    return forms


def is_valid_id(value: Any) -> bool:
    """Whether ``value`` is a well-formed datastore id or label tag (see the module docstring).

    >>> [is_valid_id(v) for v in ("BRATS_001", "../etc/passwd", "/etc/passwd", "..%252f", "..", "", "a b-c.d")]
    [True, False, False, False, False, False, True]
    """
    if not isinstance(value, str) or not value.strip():
        return False
    for form in decoded_forms(value):
        if "/" in form or "\\" in form or "\x00" in form or form.strip() in (".", ".."):
            return False
    return True


def check_id(value: Any, kind: str = "study") -> str:
    """``value`` if it is a well-formed id, else :class:`StudyNotFound` (404).

    Raises:
        StudyNotFound: the id breaks the rules of the module docstring.
    """
    if not is_valid_id(value):
        raise StudyNotFound(value, kind)
    return value


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s'\"/:,;()\[\]]+/)+([^\s'\"/:,;()\[\]]*)")


def scrub_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last part, so no message shows the server's folders.

    >>> scrub_paths("cannot read '/srv/studies/CASE.nii.gz' (see /tmp/x/y.log)")
    "cannot read 'CASE.nii.gz' (see y.log)"
    """
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1), text)


class SafeLocalDatastore(LocalDatastore):
    """MONAI Label's :class:`~monailabel.datastore.local.LocalDatastore` that accepts ids and label tags only by the
    rules of the module docstring and answers a missing study or label with :class:`StudyNotFound` (404), the same
    answer as a refused id, before any file is opened or written.

    Same arguments as ``LocalDatastore``.
    """

    def _image(self, image_id: Any) -> str:
        check_id(image_id)
        if image_id not in self._datastore.objects:
            raise StudyNotFound(image_id)
        return image_id

    def _label(self, label_id: Any, label_tag: Any) -> None:
        check_id(label_id, "label")
        check_id(label_tag, "label tag")

    def has_image(self, image_id: Any) -> bool:
        """Whether ``image_id`` is a well-formed id of a study in the datastore."""
        return is_valid_id(image_id) and image_id in self._datastore.objects

    def get_image(self, image_id: str, params: Any = None) -> Any:
        return super().get_image(self._image(image_id), params)

    def get_image_uri(self, image_id: str) -> str:
        return super().get_image_uri(self._image(image_id))

    def get_image_info(self, image_id: str) -> dict[str, Any]:
        info = super().get_image_info(self._image(image_id))
        info.pop("path", None)  # a server path: the id is what clients use
        return info

    def get_label(self, label_id: str, label_tag: str, params: Any = None) -> Any:
        self._label(label_id, label_tag)
        return super().get_label(label_id, label_tag, params)

    def get_label_uri(self, label_id: str, label_tag: str) -> str:
        self._label(label_id, label_tag)
        uri = super().get_label_uri(label_id, label_tag)
        if not uri:
            raise StudyNotFound(label_id, "label")
        return uri

    def get_labels_by_image_id(self, image_id: str) -> dict[str, str]:
        return super().get_labels_by_image_id(self._image(image_id))

    def get_label_by_image_id(self, image_id: str, tag: str) -> str:
        check_id(tag, "label tag")
        return super().get_label_by_image_id(self._image(image_id), tag)

    def get_label_info(self, label_id: str, label_tag: str) -> dict[str, Any]:
        self._label(label_id, label_tag)
        info = super().get_label_info(label_id, label_tag)
        info.pop("path", None)
        return info

    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        if image_id:
            check_id(image_id)
        else:
            check_id(self._to_id(os.path.basename(image_filename))[0])
        return super().add_image(image_id, image_filename, image_info)

    def remove_image(self, image_id: str) -> None:
        super().remove_image(self._image(image_id))

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]) -> str:
        check_id(label_tag, "label tag")
        return super().save_label(self._image(image_id), label_filename, label_tag, label_info)

    def remove_label(self, label_id: str, label_tag: str) -> None:
        self._label(label_id, label_tag)
        super().remove_label(label_id, label_tag)

    def update_image_info(self, image_id: str, info: dict[str, Any]) -> None:
        super().update_image_info(self._image(image_id), info)

    def update_label_info(self, label_id: str, label_tag: str, info: dict[str, Any]) -> None:
        self._label(label_id, label_tag)
        super().update_label_info(label_id, label_tag, info)


def extension_patterns(suffixes: Sequence[str]) -> list[str]:
    """``LocalDatastore``'s glob patterns for file suffixes: ``[".nii.gz"] -> ["*.nii.gz"]`` (both cases)."""
    out: list[str] = []
    for s in suffixes:
        for case in (s.lower(), s.upper()):
            if f"*{case}" not in out:
                out.append(f"*{case}")
    return out
