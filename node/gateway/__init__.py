"""The device gateway: signs reports as its device and seals them to the lot's
parties, on the client library alone."""
