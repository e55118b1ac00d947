"""The Textual UI of ippmon; the only package that imports Textual."""

from __future__ import annotations

from ippmon.ui.app import IppmonApp

__all__ = ["IppmonApp"]
