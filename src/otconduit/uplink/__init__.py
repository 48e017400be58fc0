"""Edge -> hub uplink: what a sensor learns, published to an MQTT broker for a central hub.

``envelope`` is the wire format (sans-I/O, shared with the hub), ``collect`` turns the
local store's changes into messages, ``publisher`` queues them through the gateway's
store-and-forward MQTT sender."""
