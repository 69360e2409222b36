import json

from django.core.management.base import BaseCommand, CommandError

from builds import buildlogs, selectors


class Command(BaseCommand):
    help = "Show a build's state, sub-state, events, outputs and error."

    def add_arguments(self, parser):
        parser.add_argument("build_id", help="the build's id, or any unique prefix of at least "
                                             f"{selectors.BUILD_PREFIX_MIN} characters (the pages show 8)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--log", action="store_true", help="print the build's Packer log (secrets masked)")
        parser.add_argument("--validation", action="store_true",
                            help="with --log: print validation.log (the in-VM validators) instead of customization.log")

    def handle(self, *args, **options):
        try:
            build = selectors.build_get(options["build_id"])
        except (selectors.NotFound, selectors.Ambiguous) as exc:
            raise CommandError(str(exc)) from exc
        if options["validation"] and not options["log"]:
            raise CommandError("--validation goes with --log.")
        if options["log"]:
            log = buildlogs.VALIDATION if options["validation"] else buildlogs.CUSTOMIZATION
            try:
                for chunk in buildlogs.stream(build, log=log):
                    self.stdout.write(chunk.decode("utf-8", errors="replace"), ending="")
            except buildlogs.Unavailable as exc:
                raise CommandError(str(exc)) from exc
            return
        summary = selectors.build_summary(build)
        if build.state in (build.State.FAILED, build.State.PARTIALLY_SUCCEEDED):
            found = buildlogs.failure(build)  # validation.log's when a validator failed
            step = found.failed_step
            summary["failed_step"] = {"name": step.name, "kind": step.kind, "index": step.index, "type": step.type,
                                      "exit_code": step.exit_code, "line": step.error_line or step.start_line,
                                      "log": found.log} if step else None
            summary["log_excerpt"] = list(found.excerpt)
            summary["log_excerpt_from"] = found.log
        else:
            summary["failed_step"], summary["log_excerpt"], summary["log_excerpt_from"] = None, [], None
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
            return
        self.stdout.write(f"Build {summary['id']}: {summary['state']}"
                          + (f" ({summary['sub_state']})" if summary["sub_state"] else ""))
        self.stdout.write(f"  gold version  {summary['gold_version']}")
        if summary["channel"]:
            self.stdout.write(f"  channel       {summary['channel']} (resolved to {summary['gold_version']} "
                              "when requested)")
        for layer in summary["layers"]:
            self.stdout.write(f"  layer         {layer}")
        self.stdout.write(f"  requested by  {summary['requested_by']} at {summary['created_at']}")
        self.stdout.write(f"  template      {summary['resource_group']}/{summary['template_name']} "
                          f"(sha256 {summary['template_sha256'][:16]}…)")
        if summary["error_code"]:
            self.stdout.write(f"  error         {summary['error_code']}: {summary['error_message']}")
        if summary["failed_step"]:
            step = summary["failed_step"]
            self.stdout.write(f"  failed step   {step['kind']} {step['index'] + 1}: {step['name']} "
                              f"(exit code {step['exit_code']}, {buildlogs.file_name(step['log'])} line {step['line']})")
        for line in summary["log_excerpt"][:10]:
            self.stdout.write(f"  | {line}")
        if summary["log_uri"]:
            self.stdout.write(f"  log           {summary['log_uri']}")
        for output in summary["outputs"]:
            self.stdout.write(f"  output        {output['name']}: {output['artifact_id'] or output['artifact_uri']}")
        self.stdout.write("  events:")
        for event in summary["events"]:
            sub = f"/{event['to_sub_state']}" if event["to_sub_state"] else ""
            detail = f"  {event['detail']}" if event["detail"] else ""
            self.stdout.write(f"    {event['at']}  {event['from_state'] or '-'} -> {event['to_state']}{sub}{detail}")
