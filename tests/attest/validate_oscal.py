#!/usr/bin/env python3
"""Validate an OSCAL assessment-results document with compliance-trestle's OSCAL models.

Usage: validate_oscal.py FILE.json. Prints the counts; exit 1 with the validation error otherwise.
"""
import json
import sys

from trestle.oscal.assessment_results import AssessmentResults

doc = json.load(open(sys.argv[1]))
try:
    ar = AssessmentResults.parse_obj(doc["assessment-results"])
except Exception as e:  # pydantic's ValidationError, or a missing root key
    print(f"invalid OSCAL assessment-results: {e}", file=sys.stderr)
    sys.exit(1)
result = ar.results[0]
print(json.dumps({"observations": len(result.observations or []), "findings": len(result.findings or [])}))
