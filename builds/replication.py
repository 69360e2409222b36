"""Where a build's gallery image versions stand in each target region, for the build page.

A gallery output's version replicates region by region while Image Builder distributes and,
for a while, after the build has ended. `for_build()` reads each version's replication with
`azure.gallery_version_replication` (Compute's `$expand=ReplicationStatus`) and caches the
answer briefly: however many people watch the page, a refresh costs at most one read per
version per CACHE_SECONDS (a finished replication is kept longer: it no longer moves).

Which versions: the run outputs' artifact ids once collected; before that (while
distributing), the SharedImage targets of the template that name an exact version. A target
that lets Image Builder number the version is listed without a state until its run output
is collected.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache

from builds import azure
from builds.models import Build

CACHE_SECONDS = 3  # the status block's refresh (web.views_builds.POLL_SECONDS)
DONE_CACHE_SECONDS = 300  # a Completed or Failed replication stays so until someone changes the version
_MISSING = "missing"  # cached for a version that does not exist (yet)


@dataclass(frozen=True)
class OutputReplication:
    run_output_name: str
    version_id: str  # "" while Image Builder has not said which version it made
    replication: azure.Replication | None = None  # None: not read, not created yet, or unreadable
    error: str = ""  # why it could not be read

    @property
    def version(self) -> str:
        return self.version_id.rsplit("/", 1)[-1] if self.version_id else ""

    @property
    def pending(self) -> bool:
        """Still moving: not created yet or some region still replicating."""
        if self.error:
            return False
        return self.replication is None or self.replication.aggregated_state.lower() not in ("completed", "failed")


def _gallery_version(artifact_id: str) -> bool:
    lowered = artifact_id.lower()
    return "/providers/microsoft.compute/galleries/" in lowered and "/versions/" in lowered


def targets(build: Build) -> list[tuple[str, str]]:
    """(run output name, version id or "") of each gallery output of the build, in template order."""
    collected = {output.run_output_name: output.artifact_id for output in build.outputs.all()
                 if _gallery_version(output.artifact_id)}
    found: list[tuple[str, str]] = []
    for target in (build.template.get("properties") or {}).get("distribute") or []:
        if not isinstance(target, dict) or target.get("type") != "SharedImage":
            continue
        name = str(target.get("runOutputName") or "")
        named = str(target.get("galleryImageId") or "")
        found.append((name, collected.pop(name, "") or (named if _gallery_version(named) else "")))
    found += list(collected.items())  # outputs the template does not list (a template edited since)
    return found


def read(version_id: str) -> azure.Replication | None:
    """The version's replication, from the cache when read in the last few seconds. Raises
    azure.AzureError."""
    key = f"replication:{version_id.lower()}"
    cached = cache.get(key)
    if cached is not None:
        return None if cached == _MISSING else cached
    found = azure.gallery_version_replication(version_id)
    done = found is not None and found.aggregated_state.lower() in ("completed", "failed")
    cache.set(key, _MISSING if found is None else found, timeout=DONE_CACHE_SECONDS if done else CACHE_SECONDS)
    return found


def for_build(build: Build) -> list[OutputReplication]:
    """Each gallery output with its per-region replication; [] for a build without one, or
    one that never reached Distributing."""
    if build.state in (Build.State.PENDING, Build.State.SUBMITTING) or not build.run_started:
        return []
    if build.is_active and (build.sub_state or "").lower() != "distributing":
        return []
    if build.state in (Build.State.FAILED, Build.State.CANCELED) and not build.outputs.exists():
        return []
    result = []
    for name, version_id in targets(build):
        if not version_id:
            result.append(OutputReplication(name, ""))
            continue
        try:
            result.append(OutputReplication(name, version_id, read(version_id)))
        except azure.AzureError as exc:
            result.append(OutputReplication(name, version_id, error=exc.message))
    return result
