"""The imperative shell of Autograd Tutor: configuration, storage, sandbox, terminal and Telegram."""
