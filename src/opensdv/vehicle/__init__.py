"""What runs in one vehicle: the data broker, brand CAN adapters, twins, apps, OTA client."""
