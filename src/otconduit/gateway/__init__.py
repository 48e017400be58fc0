"""The one-way gateway: read-only collection of plant tags (Modbus, OPC UA, S7) and
delivery to IT (historian, MQTT Unified Namespace, Sparkplug B, data diode)."""
