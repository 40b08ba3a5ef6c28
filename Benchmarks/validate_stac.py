#!/usr/bin/env python3
"""Validates STAC Items offline: the core Item schema (STAC 1.1.0) that pystac ships with
pystac[validation] (pystac.validation.local_validator), checked with jsonschema; then the
projection and classification extension fields through pystac's extension classes (their
JSON schemas are not shipped, so no validator can fetch them here).

Usage: Benchmarks/.venv/bin/python Benchmarks/validate_stac.py ITEM.json...   (exit 1 on a problem)
"""
import json
import re
import sys

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from pystac.validation.local_validator import VERSION, get_local_schema_cache
import pystac
from pystac.extensions.classification import ClassificationExtension
from pystac.extensions.projection import ProjectionExtension


def core_validator():
    cache = get_local_schema_cache()
    registry = Registry().with_resources([(uri, Resource.from_contents(s)) for uri, s in cache.items()])
    schema = cache[f"https://schemas.stacspec.org/v{VERSION}/item-spec/json-schema/item.json"]
    return Draft7Validator(schema, registry=registry)


def problems(path, validator):
    with open(path) as f:
        data = json.load(f)
    out = [f"{'/'.join(map(str, e.path)) or '(item)'}: {e.message}" for e in validator.iter_errors(data)]
    if out:
        return out
    item = pystac.Item.from_dict(data)
    proj = ProjectionExtension.ext(item)
    if item.geometry is not None:
        if not (proj.code or proj.wkt2):
            out.append("proj:code or proj:wkt2 missing")
        if not (isinstance(proj.transform, list) and len(proj.transform) in (6, 9)):
            out.append(f"proj:transform {proj.transform!r}")
    if not (isinstance(proj.shape, list) and len(proj.shape) == 2 and all(isinstance(v, int) and v > 0 for v in proj.shape)):
        out.append(f"proj:shape {proj.shape!r}")
    for key, asset in item.assets.items():
        if "classification:classes" not in asset.extra_fields:
            continue
        for c in ClassificationExtension.ext(asset).classes:
            if not isinstance(c.value, int):
                out.append(f"assets.{key} class value {c.value!r}")
            if not re.fullmatch(r"[0-9A-Za-z_-]+", c.name or ""):
                out.append(f"assets.{key} class name {c.name!r}")
            if c.color_hint is not None and not re.fullmatch(r"[0-9A-Fa-f]{6}", c.color_hint):
                out.append(f"assets.{key} color_hint {c.color_hint!r}")
    for uri in data.get("stac_extensions", []):
        if not re.fullmatch(r"https://stac-extensions\.github\.io/(projection|classification)/v2\.0\.0/schema\.json", uri):
            out.append(f"unexpected extension {uri}")
    return out


def main():
    validator = core_validator()
    failed = False
    for path in sys.argv[1:]:
        found = problems(path, validator)
        failed |= bool(found)
        print(f"{path}: " + ("valid (STAC %s Item schema, projection and classification fields)" % VERSION if not found else "; ".join(found)))
    sys.exit(1 if failed or len(sys.argv) < 2 else 0)


if __name__ == "__main__":
    main()
