from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.audit import audit_context, audit_record
from accounts.models import AuditEvent, Lab, Membership, User


@admin.register(User)
class MalariaUserAdmin(UserAdmin):
    list_display = ["email", "firebase_uid", "is_staff", "is_superuser", "last_login", "date_joined"]
    search_fields = ["email", "firebase_uid", "username"]
    fieldsets = [*UserAdmin.fieldsets, ("Firebase", {"fields": ["firebase_uid"]})]


@admin.register(Lab)
class LabAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(
            action="lab.update" if change else "lab.create",
            context=audit_context(request),
            target=obj,
            actor=request.user,
            lab=obj,
        )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["email", "lab", "role", "created_at"]
    list_filter = ["role", "lab"]
    search_fields = ["email", "lab__name"]

    def save_model(self, request, obj, form, change):
        previous = Membership.objects.filter(pk=obj.pk).values_list("role", flat=True).first() if change else None
        super().save_model(request, obj, form, change)
        audit_record(
            action="membership.role_change",
            context=audit_context(request),
            target=obj,
            actor=request.user,
            lab=obj.lab,
            detail={"email": obj.email, "from": previous, "to": obj.role, "via": "admin"},
        )

    def delete_model(self, request, obj):
        audit_record(
            action="membership.role_change",
            context=audit_context(request),
            target=obj,
            actor=request.user,
            lab=obj.lab,
            detail={"email": obj.email, "from": obj.role, "to": None, "via": "admin"},
        )
        super().delete_model(request, obj)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit trail is never edited or deleted through the app."""

    list_display = ["created_at", "actor_email", "lab", "action", "object_type", "object_id", "ip_address"]
    list_filter = ["action", "object_type", "lab"]
    search_fields = ["actor_email", "object_id", "action"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
