"""Importers of the anchors' own test-set lists into agomni manifests (see agomni.run.items)."""

from __future__ import annotations

IMPORTERS: dict = {}
