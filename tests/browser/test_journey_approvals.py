"""Four eyes and releases, in the browser: alice requests publishing, frank approves from his
home page queue; a promotion to `production` flips `excludeFromLatest` of the gallery versions
in the emulator; a revocation excludes every gallery version built from the old version and
the lineage shows it. Break-glass is marked in red, with words."""

from __future__ import annotations

import pytest

from builds import approvals
from builds.models import Build, ReleaseStep
from tests import factories
from tests.browser.support import check_accessibility, request_publishing, sign_in, switch_user
from tests.support.build_rows import make_build
from tests.support.emulator import EmulatorHandle
from tests.support.gallery import make_gallery_versions, profile_of

pytestmark = pytest.mark.django_db(transaction=True)


def built_from(gold_version, version_ids, user, layer_versions=()):
    return [make_build(gold_version, layer_versions, requested_by=user, state=Build.State.SUCCEEDED,
                       phases=("Queued",), outputs=[{"name": "gallery", "artifact_id": version_id}])
            for version_id in version_ids]


def released(emulator: EmulatorHandle) -> None:
    emulator.wait_for(lambda: not ReleaseStep.objects.filter(state=ReleaseStep.State.PENDING).exists(), timeout=60)


def test_four_eyes_promotion_and_revocation_reach_the_gallery(portal, page, alice, frank, bob, erin, web):
    emulator = portal.emulator
    image = factories.make_gold_image("ubuntu", actor=alice)
    old = factories.make_gold_version(image, "1.0.0", actor=alice)
    draft = factories.make_gold_version(image, "1.1.0", actor=alice, publish=False,
                                        vm_profile={"vmSize": "Standard_D4ds_v5"})
    layer_version = factories.make_layer_version(factories.make_layer(web, image, "nginx", actor=bob), actor=bob)
    old_ids = make_gallery_versions(emulator, 2)
    derived = built_from(old, old_ids, bob, [layer_version])

    # alice asks for 1.1.0 to be published.
    sign_in(page, alice)
    page.goto("/gold/ubuntu/v/1.1.0/")
    request_publishing(page, "1.1.0", "bigger build VM")
    request = draft.publish_requests.get()
    page.goto(f"/approvals/{request.uuid}/")
    assert page.get_by_text("somebody else must approve it").is_visible()  # four eyes, said on the page

    # frank finds it on his home page, reads the diff and approves.
    switch_user(page, frank)
    page.get_by_role("heading", name="Waiting for your approval").wait_for()
    page.get_by_role("link", name="publish ubuntu@1.1.0").click()
    assert page.get_by_role("heading", name="Changes since ubuntu@1.0.0").is_visible()
    check_accessibility(page, "approval-request")
    page.get_by_label("Approve and publish when enough approvals are in").check()
    page.get_by_role("button", name="Record my decision").click()
    page.get_by_text("Approved: ubuntu@1.1.0 is published.").wait_for()
    draft.refresh_from_db()
    assert draft.status == "published"

    # The gallery version built from 1.1.0 is kept out of `latest` until 1.1.0 is in production.
    (new_id,) = make_gallery_versions(emulator, 1, first=5, exclude_from_latest=True)
    built_from(draft, [new_id], bob, [layer_version])
    page.goto("/gold/ubuntu/v/1.1.0/")
    page.get_by_role("link", name="Promote to a channel…").click()
    page.get_by_role("button", name="Request promotion").click()
    page.get_by_text("Promotion requested").wait_for()
    switch_user(page, alice)
    page.get_by_role("link", name="promote ubuntu@1.1.0 to production").click()
    page.get_by_label("Approve and promote when enough approvals are in").check()
    page.get_by_role("button", name="Record my decision").click()
    page.get_by_text("Approved: ubuntu@1.1.0 is promoted.").wait_for()
    released(emulator)
    assert not profile_of(emulator, new_id).get("excludeFromLatest")

    # bob's layer follows production: his next build is resolved to 1.1.0 and says so.
    build = approvals.build_request_on_channel(actor=bob, gold_image=image, channel="production",
                                               layer_versions=[layer_version])
    assert (build.channel, build.gold_version) == ("production", draft)

    # Revoking 1.0.0 marks every gallery version built from it.
    page.goto("/gold/ubuntu/v/1.0.0/")
    page.get_by_role("link", name="Revoke…").click()
    page.fill("textarea[name=reason]", "CVE-2026-1234 in the kernel")
    page.get_by_role("button", name="Revoke 1.0.0").click()
    page.get_by_text("ubuntu@1.0.0 is now revoked.").wait_for()
    released(emulator)
    for version_id in old_ids:
        assert profile_of(emulator, version_id)["excludeFromLatest"] is True
    page.get_by_role("link", name="Lineage").click()
    node = page.locator(f"svg g:has(a[href='/builds/{derived[0].uuid}/'])")
    assert "mark-revoked" in (node.first.get_attribute("class") or "")

    # Break-glass, by erin, is shown in red and in words in the report.
    emergency = factories.make_gold_version(image, "1.2.0", actor=alice, publish=False)
    switch_user(page, erin)
    page.goto("/approvals/break-glass/ubuntu/1.2.0/")
    page.fill("textarea[name=reason]", "INC-4711: the kernel fix cannot wait")
    page.get_by_role("button", name="Break glass: publish 1.2.0 now").click()
    page.get_by_text("BREAK-GLASS: ubuntu@1.2.0 is published without approvals.").wait_for()
    emergency.refresh_from_db()
    assert emergency.status == "published"
    switch_user(page, frank)
    page.goto("/approvals/report/")
    assert page.get_by_text("BREAK-GLASS: no approvals").first.is_visible()
    check_accessibility(page, "approvals-report")
    assert page.console_errors == []
