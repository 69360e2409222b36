"""web.htmx: the one rule for htmx answers (docs/style.md)."""

from django.test import RequestFactory

from web import htmx


def test_form_errors_answer_200_to_htmx_and_422_otherwise():
    plain, swap = RequestFactory().get("/"), RequestFactory().get("/", HTTP_HX_REQUEST="true")
    assert htmx.error_status(plain) == 422
    assert htmx.error_status(swap) == 200
    assert htmx.is_htmx(swap)
    assert not htmx.is_htmx(plain)
