"""Quotas by enrollment: students, courses with quota profiles, enrollments, and applying their sum."""
