"""Every provider the product can use, by name. A new provider is a folder and a line here."""

from contact_center.providers.base import ProviderSpec
from contact_center.providers.kolmeya.provider import KOLMEYA, KOLMEYA_SANDBOX
from contact_center.providers.whatsapp_cloud.provider import WHATSAPP_CLOUD, WHATSAPP_SANDBOX

PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec for spec in (KOLMEYA, KOLMEYA_SANDBOX, WHATSAPP_CLOUD, WHATSAPP_SANDBOX)}


def is_sandbox_provider(name: str) -> bool:
    """Whether channels of this provider talk to a local simulator (nothing reaches a real provider)."""
    spec = PROVIDERS.get(name)
    return spec is not None and spec.sandbox
