"""Fixed data for migrating learners' stored state and logs when content ids change."""
