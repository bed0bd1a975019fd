from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts, labs and audit"

    def ready(self):
        import accounts.schema  # noqa: F401 (registers the OpenAPI description of Firebase authentication)
        from accounts.firebase import refuse_untrusted_emulator

        refuse_untrusted_emulator()
