"""ARM template deployments through azure-mgmt-resource's own pipeline and ARM poller.

azure-mgmt-resource 26 moved deployments to a separate package (azure-mgmt-resource-deployments)
that Goldsmith does not install; the operations are a few REST calls, so tests send them through
the installed client's pipeline (authentication, retries, the CA) and poll with azure-mgmt-core's
ARMPolling, exactly as the generated operations do. Answers are plain JSON dicts.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.core.polling import LROPoller
from azure.core.rest import HttpRequest
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.core.polling.arm_polling import ARMPolling

API_VERSION = "2025-04-01"


class DeploymentsApi:
    def __init__(self, client, subscription_id: str, base_url: str, api_version: str = API_VERSION):
        self.pipeline = client._client  # the generated client's PipelineClient
        self.base_url = base_url.rstrip("/")
        self.subscription_id = subscription_id
        self.api_version = api_version

    def _url(self, group: str, name: str = "", suffix: str = "") -> str:
        url = f"/subscriptions/{self.subscription_id}/resourcegroups/{group}/providers/Microsoft.Resources/deployments"
        if name:
            url += f"/{name}"
        return f"{url}{suffix}?api-version={self.api_version}"

    def _send(self, method: str, url: str, body: Any = None, *, ok=(200,)):
        url = self.base_url + url
        request = HttpRequest(method, url, json=body) if body is not None else HttpRequest(method, url)
        answer = self.pipeline.send_request(request, _return_pipeline_response=True)
        if answer.http_response.status_code not in ok:
            raise HttpResponseError(response=answer.http_response, error_format=ARMErrorFormat)
        return answer

    def _poller(self, initial) -> LROPoller:
        def result(pipeline_response):
            response = pipeline_response.http_response
            return response.json() if response.content else None

        return LROPoller(self.pipeline, initial, result, ARMPolling(0))

    def begin_create_or_update(self, group: str, name: str, body: dict) -> LROPoller:
        return self._poller(self._send("PUT", self._url(group, name), body, ok=(200, 201)))

    def validate(self, group: str, name: str, body: dict) -> dict:
        """The validate answer: a DeploymentValidateResult, or {"error": ...} on 400."""
        return self._send("POST", self._url(group, name, "/validate"), body, ok=(200, 400)).http_response.json()

    def get(self, group: str, name: str) -> dict:
        return self._send("GET", self._url(group, name)).http_response.json()

    def list(self, group: str) -> list[dict]:
        return self._send("GET", self._url(group)).http_response.json()["value"]

    def operations(self, group: str, name: str) -> list[dict]:
        url = (f"/subscriptions/{self.subscription_id}/resourcegroups/{group}/deployments/{name}/operations"
               f"?api-version={self.api_version}")
        return self._send("GET", url).http_response.json()["value"]

    def begin_delete(self, group: str, name: str) -> LROPoller:
        return self._poller(self._send("DELETE", self._url(group, name), ok=(202, 204)))
