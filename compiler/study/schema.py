"""The JSON Schema of study files, for editors (like specs/blockgraph.schema.json for specs).

Generated from the pydantic model (compiler/study/document.py, plots.py), so the help an editor
shows is the model's docstrings. Probe options are left open here (each probe checks its own:
the loader reports them located); the shipped copy is studies/blockgraph-study.schema.json.
"""

from __future__ import annotations

import json
from typing import Any

from .document import StudyDocument

SCHEMA_ID = "https://blockgraph.dev/schema/blockgraph-study-1.schema.json"


def study_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a study file."""
    schema = StudyDocument.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "blockgraph study file", **{k: v for k, v in schema.items() if k != "title"}}


def dumps() -> str:
    return json.dumps(study_schema(), indent=2, sort_keys=True) + "\n"
