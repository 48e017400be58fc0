"""Small CSAF 2.0 documents written by hand for the advisory tests."""

from __future__ import annotations

import json
from typing import Any

NAMESPACE = "https://example.org/csaf"


def product(
    pid: str,
    vendor: str,
    name: str,
    version: str,
    *,
    category: str = "product_version_range",
    models: list[str] | None = None,
    full_name: str | None = None,
) -> dict[str, Any]:
    """One vendor → product_name → version branch with its product."""
    prod: dict[str, Any] = {"name": full_name or f"{name} {version}", "product_id": pid}
    if models:
        prod["product_identification_helper"] = {"model_numbers": models}
    return {
        "category": "vendor",
        "name": vendor,
        "branches": [
            {
                "category": "product_name",
                "name": name,
                "branches": [{"category": category, "name": version, "product": prod}],
            }
        ],
    }


def document(
    tracking_id: str,
    branches: list[dict[str, Any]],
    status: dict[str, list[str]],
    *,
    version: str = "1",
    cve: str = "CVE-2099-0001",
    score: float = 7.5,
    title: str | None = None,
    remediations: list[dict[str, Any]] | None = None,
    extra_tree: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ids = sorted({i for ids in status.values() for i in ids})
    return {
        "document": {
            "category": "csaf_security_advisory",
            "csaf_version": "2.0",
            "publisher": {"category": "vendor", "name": "Example PSIRT", "namespace": NAMESPACE},
            "title": title or f"Advisory {tracking_id}",
            "tracking": {
                "id": tracking_id,
                "version": version,
                "status": "final",
                "initial_release_date": "2024-01-01T00:00:00Z",
                "current_release_date": f"2024-01-{int(version) % 28 + 1:02d}T00:00:00Z",
                "revision_history": [],
            },
            "references": [{"category": "self", "url": f"https://example.org/{tracking_id}.json"}],
        },
        "product_tree": {"branches": branches, **(extra_tree or {})},
        "vulnerabilities": [
            {
                "cve": cve,
                "title": "Improper input validation",
                "cwe": {"id": "CWE-20", "name": "Improper Input Validation"},
                "product_status": status,
                "scores": [
                    {
                        "cvss_v3": {
                            "version": "3.1",
                            "baseScore": score,
                            "baseSeverity": "HIGH",
                            "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
                        },
                        "products": ids,
                    }
                ],
                "remediations": remediations
                or [
                    {
                        "category": "vendor_fix",
                        "details": "Update to the fixed firmware",
                        "product_ids": ids,
                    }
                ],
            }
        ],
    }


def dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()
