"""Pre-flight endpoints of the API: the build VM sizes of a region (the wizard's size picker)
and the Review step's checks of a gold version, with every look-up of where the build runs.

Same functions as the pages (builds/preflight.py): no rule is written here.
"""

from __future__ import annotations

import dataclasses

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from api import errors
from api import serializers_preflight as s
from api.errors import ProblemsError
from api.views import GOLD_SLUG, VERSION_PARAM
from api.views import _errors as documented_errors
from builds import access, preflight, validation
from builds.schema import Problem

READERS = (access.SECURITY, access.EDITOR, access.AUDITOR)


def _params(request, serializer_class) -> dict:
    problems = [Problem("request.blank", name, "Leave the parameter out rather than send it empty.")
                for name in serializer_class().fields if request.query_params.get(name, None) == ""]
    serializer = serializer_class(data=request.query_params)
    if not serializer.is_valid():
        problems += errors.problems_from_detail(serializer.errors)
    if problems:
        raise ProblemsError("The request is not valid.", problems)
    return serializer.validated_data


class VmSizeList(APIView):
    @extend_schema(operation_id="vm_sizes_list", tags=["pre-flight"], parameters=[s.VmSizeParams],
                   responses={200: s.VmSizeListSerializer, **documented_errors(400, 403)},
                   summary="Build VM sizes offered in a region that fit an image (the wizard's size picker)",
                   description="From Compute's resource SKUs of the region (cached), within the current policy's "
                               "allowed_vm_sizes. When the SKUs cannot be read, `sizes` is empty and `note` says "
                               "why.")
    def get(self, request):
        access.require(request.user, *READERS)
        params = _params(request, s.VmSizeParams)
        sizes, note = preflight.vm_size_choices(params["location"], generation=params.get("generation", ""),
                                                security_type=params.get("security_type", ""),
                                                architecture=params.get("architecture", ""))
        return Response({"location": params["location"], "sizes": [s.size_data(size) for size in sizes],
                         "note": note})


class GoldVersionReview(APIView):
    @extend_schema(operation_id="gold_versions_review", tags=["pre-flight"], parameters=[GOLD_SLUG, VERSION_PARAM],
                   responses={200: s.ReviewSerializer, **documented_errors(403, 404)},
                   summary="Every check of a gold version, as the wizard's Review step runs them",
                   description="Schema, source, security types, distribution, build VM, the build policy and "
                               "secrets, and where the build runs: regions, VM size in the region, identities, "
                               "permissions (with the `az role assignment create` fix), Azure Policy and the "
                               "staging group. Look-ups go to Azure; a look-up Goldsmith may not make is a "
                               "`<group>.not-checked` warning.")
    def get(self, request, slug, version):
        access.require(request.user, *READERS)
        gold_version = access.get_gold_version(request.user, slug, version)
        rules = preflight.policy_rules()
        report = preflight.review_report(gold_version, policy=rules)
        errors_found = report.errors
        return Response({
            "gold_image": gold_version.gold_image.slug, "version": gold_version.version, "ok": not errors_found,
            "publishable": not [p for p in errors_found
                                if validation.group_of(p) not in preflight.ENVIRONMENT_GROUPS],
            "checks": [{"group": check.group, "title": check.title, "ran": check.ran, "passed": check.passed,
                        "problems": [problem.as_dict() for problem in check.problems]} for check in report.checks],
            "policy": dataclasses.asdict(rules)})
