"""The records service: devices (warranty), online-store orders and support cases.

Actions talk to it through `RecordsClient`, so a real backend (an HTTP API in front of the
company's CRM) can replace the SQL implementation without touching the dialogue code."""
from actions.records.client import (
    Asker,
    CaseView,
    Check,
    DeviceWarranty,
    OrderView,
    RecordsClient,
    SqlRecordsClient,
    records_client,
)

__all__ = ["Asker", "CaseView", "Check", "DeviceWarranty", "OrderView", "RecordsClient", "SqlRecordsClient", "records_client"]
