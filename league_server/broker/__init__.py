"""MQTT brokers for the league server: the Mosquitto configuration generator (`mosquitto`) for events, and
the embedded local broker (`embedded`) that `pitlane league serve` starts when no broker is configured."""
