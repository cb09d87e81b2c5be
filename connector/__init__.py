"""leadscore: a lead-scoring sync worker for HubSpot and Marketo."""

__version__ = "0.1.0"
