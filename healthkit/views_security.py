"""The second-factor pages (verify at login, enrol an authenticator app) and the supervisors'
lockout list. Thin: the rules are in healthkit/auth.py."""

from urllib.parse import quote

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.validators import MaxLengthValidator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from communities.models import User
from healthkit import auth
from healthkit.errors import ApplicationError
from healthkit.permissions import RoleRequiredMixin


class LoginForm(AuthenticationForm):
    """Django's login form with its user name's length checked: Django sets the field's max_length
    after building it, so no validator read it, and a user name past 255 characters reached
    django-axes, whose failed-login row cannot hold it (a 500 for anyone at the login page)."""

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        field = self.fields["username"]
        field.validators.append(MaxLengthValidator(field.max_length))


class TokenForm(forms.Form):
    token = forms.CharField(label=gettext_lazy("6-digit code from your authenticator app"), max_length=8,
                            widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                                          "autofocus": True}))


def _next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/console/"


class OtpVerifyView(LoginRequiredMixin, View):
    """Second step of the login: the code from the user's authenticator app."""

    template_name = "registration/otp_verify.html"

    def get(self, request):
        if not TOTPDevice.objects.filter(user=request.user, confirmed=True).exists():
            return redirect(reverse("otp-enrol") + "?next=" + quote(_next(request)))
        return render(request, self.template_name, {"form": TokenForm(), "next": _next(request)})

    def post(self, request):
        form = TokenForm(request.POST)
        if form.is_valid():
            try:
                device = auth.totp_verify(user=request.user, token=form.cleaned_data["token"])
            except ApplicationError as exc:
                form.add_error("token", exc.message)
            else:
                otp_login(request, device)
                return redirect(_next(request))
        return render(request, self.template_name, {"form": form, "next": _next(request)}, status=400)


class OtpEnrolView(LoginRequiredMixin, View):
    """Add an authenticator app: scan the QR code (or type the key), confirm with one code.
    Required before anything else for supervisors and administrators; optional for others."""

    template_name = "registration/otp_enrol.html"

    def dispatch(self, request, *args, **kwargs):
        has_device = TOTPDevice.objects.filter(user=request.user, confirmed=True).exists() \
            if request.user.is_authenticated else False
        if has_device and not request.user.is_verified():
            return redirect(reverse("otp-verify") + "?next=" + quote(_next(request)))
        return super().dispatch(request, *args, **kwargs)

    def _context(self, request, form):
        device = auth.totp_device_pending(user=request.user)
        qr = segno.make(device.config_url, error="m")
        return {"form": form, "next": _next(request), "device": device, "key": auth.totp_key_base32(device),
                "qr": qr.svg_data_uri(scale=4), "required": auth.second_factor_required(request.user)}

    def get(self, request):
        return render(request, self.template_name, self._context(request, TokenForm()))

    def post(self, request):
        form = TokenForm(request.POST)
        if form.is_valid():
            device = auth.totp_device_pending(user=request.user)
            try:
                device = auth.totp_enrol_confirm(user=request.user, device=device, token=form.cleaned_data["token"])
            except ApplicationError as exc:
                form.add_error("token", exc.message)
            else:
                otp_login(request, device)
                messages.success(request, _("Your authenticator app is set up. You will be asked for a code at each login."))
                return redirect(_next(request))
        return render(request, self.template_name, self._context(request, form), status=400)


class LockoutListView(RoleRequiredMixin, View):
    """Accounts and addresses locked after repeated failed logins; a supervisor releases one."""

    allowed_roles = {User.Role.SUPERVISOR, User.Role.ADMINISTRATOR}
    template_name = "console/lockouts.html"

    def get(self, request):
        return render(request, self.template_name, {"lockouts": auth.lockouts_current()})

    def post(self, request):
        try:
            removed = auth.lockout_release(actor=request.user, kind=request.POST.get("kind", ""),
                                           value=request.POST.get("value", ""))
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            if removed:
                messages.success(request, _("Released: the next login is counted from zero."))
            else:
                messages.info(request, _("Nothing to release: the lockout had already expired."))
        return redirect("lockouts")
