def reward_function(params):
    """DeepRacer's example 2: reward keeping all four wheels on the track, more for staying away from the
    borders."""
    all_wheels_on_track = params["all_wheels_on_track"]
    distance_from_center = params["distance_from_center"]
    track_width = params["track_width"]

    reward = 1e-3
    if all_wheels_on_track and (0.5 * track_width - distance_from_center) >= 0.05:
        reward = 1.0

    return float(reward)
