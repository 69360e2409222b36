"""Turning a build request's references into catalog objects, through the access funnel.

The same rules as the build buttons of the gold version and layer pages: the gold version
must be one the caller may build (security and editors), every layer one of the caller's
departments (only its editors build with layers), and a gold-only build by an editor is for
one of their departments. A reference the caller cannot see is reported exactly like one
that does not exist (a `build.not-found` problem), so existence does not leak; a role that
may never build gets 403 (audited by the funnel).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404

from api.errors import ProblemsError
from builds import access, approvals
from builds.models import GoldImageVersion, LayerVersion
from builds.schema import Problem
from builds.selectors import LAYER_REF
from builds.services import ServiceError
from portal.models import Department


@dataclass(frozen=True)
class BuildRequest:
    gold_version: GoldImageVersion
    layer_versions: list[LayerVersion]
    department: Department | None
    channel: str = ""  # the release channel the gold version was resolved from ("" for a named version)


def build_request_objects(user, data: dict) -> BuildRequest:
    """The objects named by a validated BuildRequestSerializer's data.

    Raises PermissionDenied (the caller's role may not build these) or ProblemsError listing
    every reference that does not resolve.
    """
    problems: list[Problem] = []
    gold_version = None
    channel = data.get("channel") or ""
    version = data.get("version") or ""
    if channel:
        # Resolved now, as the build is requested; the build records the channel.
        try:
            gold_image = access.get_gold_image(user, data["gold_image"], need="build")
            version = approvals.channel_resolve(gold_image, channel).version
        except Http404:
            version = ""
        except ServiceError as exc:
            problems += exc.problems
            version = ""
        if not version and not problems:
            problems.append(Problem("build.not-found", "gold_image",
                                    f"There is no gold image {data['gold_image']} you may build."))
    if version:
        try:
            gold_version = access.get_gold_version(user, data["gold_image"], version, need="build")
        except Http404:
            problems.append(Problem("build.not-found", "version",
                                    f"There is no gold image version {data['gold_image']}@{version} you may "
                                    "build."))
    layer_versions = []
    for index, ref in enumerate(data.get("layers") or []):
        match = LAYER_REF.match(ref.strip())
        if not match:
            problems.append(Problem("build.layer-ref", f"layers[{index}]",
                                    f"'{ref}' is not a layer reference: use DEPARTMENT/LAYER@VERSION, e.g. "
                                    "web/nginx@1.0.0."))
            continue
        try:
            layer_versions.append(access.get_layer_version(user, match["department"], match["layer"],
                                                           match["version"], need="build"))
        except Http404:
            problems.append(Problem("build.not-found", f"layers[{index}]",
                                    f"There is no layer version {ref.strip()} you may build with."))
    department = _department(user, data.get("department"), layer_versions, problems)
    if problems:
        raise ProblemsError("This build cannot be requested.", problems)
    return BuildRequest(gold_version, layer_versions, department, channel)


def _department(user, slug: str | None, layer_versions: list[LayerVersion], problems: list[Problem]):
    roles = access.roles_of(user)
    if slug:
        department = Department.objects.filter(slug=slug, pk__in=roles.editor_departments).first()
        if department is None:
            problems.append(Problem("build.department", "department",
                                    f"You do not build for a department called '{slug}'."))
        return department
    if layer_versions:
        return layer_versions[0].layer.department  # the service refuses layers of several departments
    if roles.security:
        return None  # the security team's gold-only builds belong to no department
    if len(roles.editor_departments) == 1:
        return Department.objects.get(pk=next(iter(roles.editor_departments)))
    problems.append(Problem("build.department", "department",
                            "You edit in several departments: name the one this build is for."))
    return None
