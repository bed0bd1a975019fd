from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts, labs and audit"

    def ready(self):
        from accounts.firebase import refuse_emulator_outside_development

        refuse_emulator_outside_development()
