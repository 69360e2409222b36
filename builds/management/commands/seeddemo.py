from django.core.management.base import BaseCommand

from builds.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo departments, people, gold images and layers (idempotent)."

    def handle(self, *args, **options):
        created = seed_demo()
        if not created:
            self.stdout.write("Demo data already present.")
        for line in created:
            self.stdout.write(f"Created {line}")
