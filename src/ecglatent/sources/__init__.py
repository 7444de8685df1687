"""Where records come from: PhysioNet downloads or a mirror folder, and database readers."""
