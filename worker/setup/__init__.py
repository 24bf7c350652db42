"""Setting the product up on a streamer's machine: OBS's configuration, and the doctor's checks."""
