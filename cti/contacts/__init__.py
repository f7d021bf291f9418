"""Who calls: contacts, their companies and contracts, and blocked numbers, looked up by phone number."""
