// Exceptions and RTTI (built with -fexceptions -frtti): a throw caught in
// main, a dynamic_cast and typeid. Exit code 0 only if all held.
#include <cstring>
#include <stdexcept>
#include <typeinfo>

#include "simcore_abi.h"

static void say(const char *s) { simcore_write(1, s, std::strlen(s)); }

struct Base {
    virtual ~Base() {}
};
struct Derived : Base {};

__attribute__((noinline)) static int thrower(volatile int x)
{
    if (x > 1) {
        throw std::runtime_error("boom");
    }
    return x;
}

int main()
{
    Derived d;
    Base *volatile b = &d;
    if (dynamic_cast<Derived *>(b) == nullptr || typeid(*b) != typeid(Derived)) {
        return 2;
    }
    try {
        thrower(5);
    } catch (const std::exception &e) {
        say("caught ");
        say(e.what());
        say("\n");
        return 0;
    }
    return 3;
}
