"""Built-in device configurations (data): one TOML file per device, read by `hwdiffnas.devices`."""
