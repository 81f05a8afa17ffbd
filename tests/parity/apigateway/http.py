"""One HTTP request to the local API Gateway, printed with its parity case's name (the evidence tag in brackets)."""

from __future__ import annotations

from typing import Any

import requests

from taskrail.local.apigw import LocalApiGateway

SESSION = requests.Session()


def send(gateway: LocalApiGateway, method: str, path: str, case: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", 30)
    response = SESSION.request(method, gateway.url + path, **kwargs)
    print(f"PARITY apigateway {case}: {response.status_code} {response.text[:140]!r}")
    return response
