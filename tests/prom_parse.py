"""Parses a Prometheus text exposition with the official Python client's parser.

Run by tests/it/metrics_prom.rs: reads the body of `GET /metrics` on stdin,
parses it with `prometheus_client.parser.text_string_to_metric_families`
(which raises on text it cannot read) and prints the families as JSON:
[{"name", "type", "documentation", "samples": [{"name", "labels", "value"}]}].
Non-finite values are printed as the strings "NaN", "+Inf", "-Inf".
"""

import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def number(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return v


def main():
    text = sys.stdin.read()
    families = []
    for f in text_string_to_metric_families(text):
        families.append({
            "name": f.name,
            "type": f.type,
            "documentation": f.documentation,
            "samples": [{"name": s.name, "labels": dict(s.labels), "value": number(s.value)} for s in f.samples],
        })
    json.dump(families, sys.stdout)


if __name__ == "__main__":
    main()
