from django.urls import path

from accounts import views

urlpatterns = [
    path("signin", views.signin, name="signin"),
    path("session", views.session_create, name="session"),
    path("signout", views.signout, name="signout"),
]
