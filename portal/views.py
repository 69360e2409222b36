"""Portal pages: home per role (sign-in, profile and tokens live in their own modules)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def home(request):
    return render(request, "portal/home.html")
