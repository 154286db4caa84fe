"""Twilio: webhooks, the media endpoint, signatures, stream tokens, TwiML, the REST client."""
