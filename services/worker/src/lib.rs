//! Background loops (janitor; cron and outbox relay arrive with their issues).
