"""The signed-in user's own page: who they are, their roles, and their API tokens."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from portal import access, tokens
from portal.models import ApiToken, ExternalIdentity, Membership
from portal.text import validate_plain_name

EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("", "Never")]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, validators=[validate_plain_name], help_text="What will use it, e.g. “nightly pipeline”.")
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="90", required=False, label="Expires after")


def _context(request, form=None, new_secret: str = "", new_token=None) -> dict:
    user = request.user
    memberships = Membership.objects.filter(user=user).select_related("department").order_by("role",
                                                                                              "department__name")
    return {
        "roles": access.roles_of(user),
        "memberships": memberships,
        "tokens": ApiToken.objects.filter(user=user).order_by("-created_at"),
        "form": form or TokenForm(),
        "new_secret": new_secret,
        "new_token": new_token,
        "entra": ExternalIdentity.objects.filter(user=user).first(),
        "now": timezone.now(),
    }


@login_required
@require_GET
def profile(request):
    return render(request, "portal/profile.html", _context(request))


@login_required
@require_POST
@never_cache
def token_create(request):
    """Create a token and show it once, on the page this POST returns (never in a redirect URL)."""
    form = TokenForm(request.POST)
    if not form.is_valid():
        return render(request, "portal/profile.html", _context(request, form=form), status=422)
    days = int(form.cleaned_data["expires"]) if form.cleaned_data["expires"] else None
    token, secret = tokens.token_create(actor=request.user, user=request.user, name=form.cleaned_data["name"],
                                        expires_days=days)
    return render(request, "portal/profile.html", _context(request, new_secret=secret, new_token=token), status=201)


@login_required
@require_POST
def token_revoke(request, token_uuid):
    # Other people's tokens are "not found": one user cannot learn or touch another's tokens.
    token = ApiToken.objects.filter(uuid=token_uuid, user=request.user).first()
    if token is None:
        if ApiToken.objects.filter(uuid=token_uuid).exists():
            access.deny(request.user, "API token of another user", object_type="apitoken", object_id=str(token_uuid),
                        status=404)
        raise Http404("No such token.")
    tokens.token_revoke(actor=request.user, token=token)
    return redirect("portal:profile")
