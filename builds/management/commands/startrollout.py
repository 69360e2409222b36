from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from builds import approvals, rollouts, selectors, services


class Command(BaseCommand):
    help = ("Plan and start a rollout of a gold image version: every dependent department layer is rebuilt "
            "on it in waves; prints the rollout id alone.")

    def add_arguments(self, parser):
        parser.add_argument("gold_slug")
        parser.add_argument("version")
        parser.add_argument("--user", required=True, metavar="USERNAME", help="who starts it (the security team)")
        parser.add_argument("--wave-size", type=int, default=10, help="builds per wave after the canary (10)")
        parser.add_argument("--canary", type=int, default=1, help="builds in the canary wave (1; 0 for none)")
        parser.add_argument("--max-failure-rate", type=float, default=0.2,
                            help="stop when a wave's failure rate passes this (0.2)")
        parser.add_argument("--channel", default="", help="ask for the version's promotion to it after success")
        parser.add_argument("--plan-only", action="store_true", help="create the rollout planned, do not start it")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user called {options['user']}.")
        try:
            gold_version = selectors.gold_version_get(options["gold_slug"], options["version"])
        except selectors.NotFound as exc:
            raise CommandError(str(exc)) from exc
        try:
            rollout = rollouts.rollout_create(
                actor=user, gold_version=gold_version, canary_size=options["canary"], wave_size=options["wave_size"],
                max_failure_rate=options["max_failure_rate"], channel=options["channel"])
            if not options["plan_only"]:
                rollouts.rollout_start(actor=user, rollout=rollout)
        except (services.ServiceError, approvals.NotAllowed) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(str(rollout.uuid))
