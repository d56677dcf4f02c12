from django.contrib.auth import views as auth_views
from django.urls import path

from healthkit import views_console, views_security

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=views_security.LoginForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/otp/", views_security.OtpVerifyView.as_view(), name="otp-verify"),
    path("accounts/otp/enrol/", views_security.OtpEnrolView.as_view(), name="otp-enrol"),
    path("console/security/lockouts/", views_security.LockoutListView.as_view(), name="lockouts"),
    path("console/", views_console.ConsoleHomeView.as_view(), name="console-home"),
    path("console/popups/", views_console.PopupListView.as_view(), name="console-popups"),
    path("console/popups/<int:pk>/", views_console.PopupCaseDetailView.as_view(), name="console-popup"),
    path("console/audit/", views_console.AuditView.as_view(), name="console-audit"),
    path("console/audit/alerts/<int:pk>/acknowledge/", views_console.AuditAlertAcknowledgeView.as_view(),
         name="console-audit-alert-acknowledge"),
    path("", views_console.LandingView.as_view(), name="landing"),
]
