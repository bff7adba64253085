"""Behaviour events: live RFM aggregates per customer in Redis, re-assigned as they move."""
