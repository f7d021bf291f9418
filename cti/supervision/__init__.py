"""The supervision screen: pages for supervisors and admins (prompts, hours, flows, wallboard, reports)."""
