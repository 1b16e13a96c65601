//! A simulated site (meter, chargers, vehicles) serving the drivers' own register maps.
