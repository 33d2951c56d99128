"""Alert scenarios: timelines of device inputs with the alerts they must (not) raise."""
