import json

from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from builds import rollouts
from builds.models import Rollout


class Command(BaseCommand):
    help = "Show a rollout: its state, waves with their builds, and the layers that need a new version."

    def add_arguments(self, parser):
        parser.add_argument("rollout_id")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        try:
            rollout = Rollout.objects.select_related("gold_version__gold_image", "created_by").get(
                uuid=options["rollout_id"])
        except (Rollout.DoesNotExist, ValueError, Http404) as exc:
            raise CommandError(f"No rollout {options['rollout_id']}.") from exc
        summary = rollouts.describe(rollout)
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
            return
        self.stdout.write(f"Rollout {summary['id']}: {summary['state']}  {summary['gold_image']} "
                          f"{summary['version']}")
        if summary["stop_reason"]:
            self.stdout.write(f"  {summary['stop_reason']}")
        for wave in summary["waves"]:
            rate = f", {wave['failure_rate']:.0%} failed" if wave["failure_rate"] is not None else ""
            self.stdout.write(f"  {wave['name']}: {wave['state']}{rate}")
            for build in wave["builds"]:
                failure = build["failure"]
                why = f"  {failure['code']}: {failure['message'][:120]}" if failure else ""
                self.stdout.write(f"    {build['layer']:40} {build['state']:20} {build['id'] or '-'}{why}")
        for entry in summary["needs_action"]:
            draft = f"draft {entry['draft']} ({entry['draft_status']})" if entry["draft"] else "no draft yet"
            self.stdout.write(f"  needs a new version: {entry['layer']} accepts {entry['accepts']}; {draft}")
