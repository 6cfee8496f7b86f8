"""DeepRacer's example reward functions (and pitlane's progress example): the templates a new recipe starts
from. Each file defines `reward_function(params)`; `contracts.recipe.reward_templates()` reads them."""
