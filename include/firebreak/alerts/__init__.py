"""Alert intake: external alerts (Alertmanager, monitor webhooks, the gateway's breaker) open incidents."""
