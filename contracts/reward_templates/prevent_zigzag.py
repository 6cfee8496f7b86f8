def reward_function(params):
    """DeepRacer's example 3: follow the centre line (example 1), and cut the reward by a fifth when steering hard,
    which stops the car weaving."""
    distance_from_center = params["distance_from_center"]
    track_width = params["track_width"]
    abs_steering = abs(params["steering_angle"])  # degrees; only its size matters here

    marker_1 = 0.1 * track_width
    marker_2 = 0.25 * track_width
    marker_3 = 0.5 * track_width

    if distance_from_center <= marker_1:
        reward = 1.0
    elif distance_from_center <= marker_2:
        reward = 0.5
    elif distance_from_center <= marker_3:
        reward = 0.1
    else:
        reward = 1e-3  # likely crashed / close to off track

    abs_steering_threshold = 15  # degrees
    if abs_steering > abs_steering_threshold:
        reward *= 0.8

    return float(reward)
