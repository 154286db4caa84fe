"""A Twilio simulator: places calls against a running gateway as Twilio would."""
